// The console's two languages: the browser's choice first, then the person's (kept).
import { signal } from "./state";

export type Lang = "en" | "zh-CN";
const KEY = "cumulo.lang";

const en = {
  appName: "cumulo",
  signIn: "Sign in",
  signUp: "Create account",
  signOut: "Sign out",
  email: "E-mail",
  password: "Password",
  birthDate: "Date of birth",
  terms: "I accept the terms of service",
  showTerms: "Read the terms",
  noAccount: "No account yet?",
  haveAccount: "Already have an account?",
  minorTitle: "Under 14?",
  minorText:
    "Children cannot create an account themselves. A parent or guardian signs in and creates it for them (Account → Family), and stays responsible for it.",
  created: "Your account is ready. Sign in to start.",
  files: "Files",
  trash: "Trash",
  account: "Account",
  language: "Language",
  newFolder: "New folder",
  folderName: "Folder name",
  create: "Create",
  cancel: "Cancel",
  upload: "Upload files",
  dropHere: "Drop files here to upload them",
  name: "Name",
  size: "Size",
  modified: "Modified",
  actions: "Actions",
  download: "Download",
  rename: "Rename",
  delete: "Move to trash",
  restore: "Restore",
  emptyTrash: "Empty trash",
  empty: "Nothing here yet.",
  root: "My files",
  used: "{used} of {quota} used",
  uploading: "Uploading {name}: {percent}%",
  paused: "{name}: paused at {percent}% — choose the same file again to resume",
  resume: "Resume",
  pause: "Pause",
  done: "Done",
  loading: "Loading…",
  reactivateTitle: "Keep your account",
  reactivateIntro: "This link comes from the notice we sent about your unused account.",
  stateActive: "Your account is active. Nothing will be deleted.",
  stateFrozen: "Your account is frozen because it was not used. Its data will be deleted on {when} unless you keep it.",
  stateDeleting: "Your account's data is being deleted.",
  stateDeleted: "This account was deleted on {when}.",
  keepAccount: "Keep my account",
  reactivated: "Welcome back: your account is active again and nothing will be deleted.",
  linkInvalid: "This link is not valid (it may have been used or may have expired). Sign in to keep your account.",
  signedInAs: "Signed in as {email}",
  frozenBanner: "Your account is frozen and will be deleted on {when}.",
  error: "Something went wrong: {message}",
  unavailable: "cumulo cannot be reached right now. Try again in a moment.",
  notFound: "There is no such page.",
  back: "Back",
  skipToContent: "Skip to content",
  share: "Share",
  sharing: "Sharing",
  expiry: "Link expires",
  never: "Never",
  days: "In {n} day(s)",
  linkPassword: "Password for the link (optional)",
  createLink: "Create link",
  linkReady: "Anyone with this link can open it:",
  linkAddress: "Link address",
  recipient: "E-mail or phone of the person",
  shareWithPerson: "Share with this person",
  sharedWith: "Shared with {who}.",
  close: "Close",
  myLinks: "My links",
  noLinks: "No links yet.",
  expires: "expires {when}",
  noExpiry: "no expiry",
  withPassword: "password",
  revoke: "Revoke",
  sharedByMe: "Shared with people",
  sharedWithMe: "Shared with me",
  nothingShared: "Nothing is shared with you yet.",
  sharedWithYou: "Shared with you",
  linkGone: "This link does not work any more (revoked, expired or never valid).",
  linkNeedsPassword: "This link is protected by a password.",
  open: "Open",
  blocked: "This content is not available: it was blocked after a complaint.",
  reportThis: "Report this",
  category: "What is wrong",
  catIllegal: "Illegal content",
  catHarmful: "Harmful content",
  catPrivacy: "It violates my privacy",
  catSpam: "Spam or fraud",
  catCopyright: "It infringes my copyright",
  catOther: "Something else",
  description: "Tell us more",
  contact: "Your e-mail address (for our answer)",
  rightsHolder: "Rights holder",
  work: "The work that is copied",
  goodFaith: "I believe in good faith that this use is not authorised by the rights holder, its agent or the law.",
  accuracy: "The information is accurate and I am authorised to act for the rights holder.",
  signature: "Your full name (signature)",
  sendReport: "Send the report",
  reported: "Thank you: your report was received. Keep this receipt:",
  accountState: "State",
  freezesAt: "Unused, it would be frozen on {when}.",
  sessions: "Where you are signed in",
  thisBrowser: "this browser",
  endSession: "Sign out there",
  sessionEnded: "That session has ended.",
  contacts: "Contacts",
  phone: "Phone number",
  save: "Save",
  saved: "Saved.",
  changePassword: "Change password",
  currentPassword: "Current password",
  newPassword: "New password",
  passwordChanged: "Your password was changed; your other sessions were signed out.",
  termsTitle: "Terms of service",
  termsAccepted: "You accepted version {version}.",
  acceptNewTerms: "Accept version {version}",
  cancelTitle: "Cancel my account",
  cancelConsequences:
    "Cancelling {email} signs you out everywhere and deletes all of its cloud content for good: files, photos, backups, synced data and device locations. Shares to others stop working. This cannot be undone.",
  cancelPhrase: "delete my account",
  cancelType: "Type \u201c{phrase}\u201d to confirm",
  cancelNow: "Cancel the account and delete its data",
  trashEmpty: "The trash is empty.",
  emptyTrashConfirm: "Delete everything in the trash for good?",
  devices: "Devices",
  noDevices: "No device is registered yet: sign in to cumulo on your phone.",
  lastSeen: "seen {when}",
  lostModeOn: "Lost mode",
  lostModeOff: "End lost mode",
  lastPosition: "Last position {lat}, {lon} (within {accuracy} m), {when}",
  noPosition: "No position reported yet.",
  ring: "Ring",
  wipe: "Erase device",
  wipeWarning: "Erasing deletes everything on the device once it is reached. Enter your password to confirm.",
  wipeNow: "Erase it",
  lostMessage: "Message on the locked screen",
  lostPhone: "Number to call",
  commands: "Commands",
  trackLabel: "The last day's track: {n} positions",
} as const;

export type Key = keyof typeof en;

const zh: Record<Key, string> = {
  appName: "cumulo",
  signIn: "登录",
  signUp: "注册账号",
  signOut: "退出登录",
  email: "电子邮箱",
  password: "密码",
  birthDate: "出生日期",
  terms: "我已阅读并同意服务条款",
  showTerms: "阅读条款",
  noAccount: "还没有账号？",
  haveAccount: "已有账号？",
  minorTitle: "未满 14 周岁？",
  minorText: "未成年人不能自行注册。请由父母或监护人登录后为其创建账号（账号 → 家庭），并由监护人负责。",
  created: "账号已创建，请登录。",
  files: "文件",
  trash: "回收站",
  account: "账号",
  language: "语言",
  newFolder: "新建文件夹",
  folderName: "文件夹名称",
  create: "创建",
  cancel: "取消",
  upload: "上传文件",
  dropHere: "将文件拖放到此处上传",
  name: "名称",
  size: "大小",
  modified: "修改时间",
  actions: "操作",
  download: "下载",
  rename: "重命名",
  delete: "移到回收站",
  restore: "恢复",
  emptyTrash: "清空回收站",
  empty: "这里还没有内容。",
  root: "我的文件",
  used: "已用 {used}，共 {quota}",
  uploading: "正在上传 {name}：{percent}%",
  paused: "{name}：已暂停于 {percent}% —— 再次选择同一文件即可继续",
  resume: "继续",
  pause: "暂停",
  done: "完成",
  loading: "加载中…",
  reactivateTitle: "保留您的账号",
  reactivateIntro: "此链接来自我们发送的账号长期未使用通知。",
  stateActive: "您的账号处于正常状态，数据不会被删除。",
  stateFrozen: "您的账号因长期未使用已被冻结。除非您选择保留，其数据将于 {when} 删除。",
  stateDeleting: "您的账号数据正在删除。",
  stateDeleted: "此账号已于 {when} 删除。",
  keepAccount: "保留我的账号",
  reactivated: "欢迎回来：您的账号已恢复正常，数据不会被删除。",
  linkInvalid: "此链接无效（可能已使用或已过期）。请登录以保留您的账号。",
  signedInAs: "当前账号：{email}",
  frozenBanner: "您的账号已冻结，将于 {when} 删除。",
  error: "出错了：{message}",
  unavailable: "暂时无法连接 cumulo，请稍后再试。",
  notFound: "页面不存在。",
  back: "返回",
  skipToContent: "跳到主要内容",
  share: "分享",
  sharing: "分享",
  expiry: "链接有效期",
  never: "永久有效",
  days: "{n} 天",
  linkPassword: "链接密码（可选）",
  createLink: "创建链接",
  linkReady: "任何拿到此链接的人都可以打开：",
  linkAddress: "链接地址",
  recipient: "对方的邮箱或手机号",
  shareWithPerson: "分享给此人",
  sharedWith: "已分享给 {who}。",
  close: "关闭",
  myLinks: "我的链接",
  noLinks: "还没有链接。",
  expires: "{when} 过期",
  noExpiry: "永久有效",
  withPassword: "有密码",
  revoke: "撤销",
  sharedByMe: "分享给他人",
  sharedWithMe: "与我分享",
  nothingShared: "还没有人与您分享内容。",
  sharedWithYou: "分享给您的内容",
  linkGone: "此链接已失效（已撤销、已过期或从未有效）。",
  linkNeedsPassword: "此链接受密码保护。",
  open: "打开",
  blocked: "此内容因投诉已被屏蔽，无法访问。",
  reportThis: "举报",
  category: "问题类型",
  catIllegal: "违法内容",
  catHarmful: "有害内容",
  catPrivacy: "侵犯我的隐私",
  catSpam: "垃圾信息或欺诈",
  catCopyright: "侵犯我的版权",
  catOther: "其他",
  description: "详细说明",
  contact: "您的邮箱（用于回复）",
  rightsHolder: "权利人",
  work: "被复制的作品",
  goodFaith: "我善意地相信此使用未经权利人、其代理人或法律授权。",
  accuracy: "以上信息准确，且我有权代表权利人行事。",
  signature: "您的全名（签名）",
  sendReport: "提交举报",
  reported: "感谢举报，我们已收到。请保存此回执：",
  accountState: "状态",
  freezesAt: "如不使用，将于 {when} 冻结。",
  sessions: "登录设备",
  thisBrowser: "当前浏览器",
  endSession: "退出该设备",
  sessionEnded: "该会话已结束。",
  contacts: "联系方式",
  phone: "手机号",
  save: "保存",
  saved: "已保存。",
  changePassword: "修改密码",
  currentPassword: "当前密码",
  newPassword: "新密码",
  passwordChanged: "密码已修改，其他设备已退出登录。",
  termsTitle: "服务条款",
  termsAccepted: "您已同意第 {version} 版。",
  acceptNewTerms: "同意第 {version} 版",
  cancelTitle: "注销账号",
  cancelConsequences:
    "注销 {email} 将在所有设备上退出登录，并永久删除其全部云端内容：文件、照片、备份、同步数据和设备位置。分享给他人的内容将失效。此操作无法撤销。",
  cancelPhrase: "注销我的账号",
  cancelType: "输入\u201c{phrase}\u201d以确认",
  cancelNow: "注销账号并删除数据",
  trashEmpty: "回收站是空的。",
  emptyTrashConfirm: "永久删除回收站中的所有内容？",
  devices: "设备",
  noDevices: "还没有注册设备：请在手机上登录 cumulo。",
  lastSeen: "最后在线 {when}",
  lostModeOn: "丢失模式",
  lostModeOff: "结束丢失模式",
  lastPosition: "最后位置 {lat}, {lon}（误差 {accuracy} 米），{when}",
  noPosition: "尚未上报位置。",
  ring: "播放声音",
  wipe: "抹除设备",
  wipeWarning: "设备联网后将删除其上的全部内容。请输入密码确认。",
  wipeNow: "抹除",
  lostMessage: "锁屏上显示的信息",
  lostPhone: "联系电话",
  commands: "指令",
  trackLabel: "最近一天的轨迹：{n} 个位置",
};

const dictionaries: Record<Lang, Record<Key, string>> = { en, "zh-CN": zh };

function initial(): Lang {
  const kept = window.localStorage.getItem(KEY);
  if (kept === "en" || kept === "zh-CN") return kept;
  return navigator.languages.some((l) => l.toLowerCase().startsWith("zh")) ? "zh-CN" : "en";
}

export const lang = signal<Lang>(initial());

export function setLang(value: Lang): void {
  window.localStorage.setItem(KEY, value);
  document.documentElement.lang = value;
  lang.set(value);
}

export function t(key: Key, values: Record<string, string | number> = {}): string {
  return dictionaries[lang.get()][key].replace(/\{(\w+)\}/g, (_, name: string) => String(values[name] ?? ""));
}

// Formatters are costly to make (a folder of a thousand files formats a thousand dates): one
// per language, made when first asked for.
const dateFormats = new Map<Lang, Intl.DateTimeFormat>();
const collators = new Map<Lang, Intl.Collator>();

/** A date and time in the person's language and time zone, to the minute. */
export function when(date: Date): string {
  const current = lang.get();
  let format = dateFormats.get(current);
  if (!format) {
    format = new Intl.DateTimeFormat(current, { dateStyle: "long", timeStyle: "short" });
    dateFormats.set(current, format);
  }
  return format.format(date);
}

/** Names in the person's language's order (numbers in names by value: IMG_2 before IMG_10). */
export function byName(a: string, b: string): number {
  const current = lang.get();
  let collator = collators.get(current);
  if (!collator) {
    collator = new Intl.Collator(current, { numeric: true, sensitivity: "base" });
    collators.set(current, collator);
  }
  return collator.compare(a, b);
}

export function bytes(count: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = count;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
